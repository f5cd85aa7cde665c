"""The window's widgets (photo list, details, model panel, engine box, dialogs, progress, the
Trainer tab and its curves). Each is handed the model objects and workers it shows; none imports
the map, the window or the core."""
