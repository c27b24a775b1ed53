"""The emulator's web dashboard under /_m365/ui/: server-rendered pages over the same state the routes use.

`ui.routes` holds the blueprint with every page registered; `ui.session` the sessions and CSRF tokens.
"""
