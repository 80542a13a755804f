"""The web UI: server-rendered pages (Jinja2) plus a little JavaScript that polls the
same JSON API the CLI uses. Every asset is in the package; nothing comes from a CDN."""
