"""``lavanya serve``: a text-to-speech web server over resident voices (FastAPI on uvicorn).

``server.serve(ServeConfig(...))`` runs it; ``app.create_app(limits, voices)`` builds the ASGI
application for a caller that runs its own server or tests. Needs the ``serve`` extra.
"""
