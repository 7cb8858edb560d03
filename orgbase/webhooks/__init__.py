"""Signed webhooks: endpoints per org, a transactional outbox, delivery with retries."""
