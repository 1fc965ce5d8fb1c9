"""The dashboard's pages, one per file, each registered with Dash by the app."""
