"""A local imitation of the Meta Graph and TikTok audience APIs, for end-to-end tests and the demo.

``server.MockServer`` runs it in-process on 127.0.0.1; ``python -m audiences.mockserver.server`` runs it in
the foreground. ``app`` routes requests to ``meta`` and ``tiktok``; ``state`` keeps what the platforms store.
"""
