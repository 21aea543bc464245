"""The live web UI, served by the daemon's own HTTP server (`http.listen`).

Server-rendered with the report's Jinja2 templates and styles, air-gapped (no CDN, no
build step, no external font). Pages render from the state store and the last cycle's
saved snapshot, never by querying Prometheus, so a refresh storm cannot load it.
Reads are open; writes (silences) need `http.auth` and a CSRF token.

- `app.py`: the WSGI application and its routing (one table of routes);
- `pages.py`: the read pages and their JSON twins under /api/v1/;
- `writes.py`: silence writes (create, expire), behind `auth.py`;
- `snapshot.py`: what a cycle leaves for the UI (its signals and figures), saved in the store.
"""
