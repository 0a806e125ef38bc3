"""The producer's JSON API: runs, streamers, errors, input validation and the OpenAPI description."""
