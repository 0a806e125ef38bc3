"""Platform limits the code stays under, written once: Cloudflare Queues and JavaScript numbers."""

from __future__ import annotations

# https://developers.cloudflare.com/queues/platform/limits/
MAX_SEND_MESSAGES = 100  # messages in one sendBatch
MAX_DELAY_SECONDS = 43_200  # older docs say 12 h, newer 24 h: stay under both

HOUR = 3600
