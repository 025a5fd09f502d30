"""Reports and pictures: flow colours, overlays, previews, HTML."""
