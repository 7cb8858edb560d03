"""Where blobs live: one interface (``base.Backend``), a folder or an S3-compatible store."""
