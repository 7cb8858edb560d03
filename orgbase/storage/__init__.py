"""File storage: Supabase Storage's API at ``/storage/v1``, buckets per org, metadata in
PostgreSQL under the verified org context, blobs in a backend (docs/storage.md)."""
