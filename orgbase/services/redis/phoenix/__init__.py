"""Supabase Realtime's protocol (Phoenix channels) on the realtime hub."""
