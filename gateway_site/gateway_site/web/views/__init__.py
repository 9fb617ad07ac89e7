"""HTML pages, one module per page family: the same view renders a whole page or, for htmx, just its fragment."""
