"""Threads and the app's only users of ``locdiff_core``: the prediction worker, photo finding,
thumbnails, EXIF reading and place names, write-back, downloads, and background priority.
Imports the model layer, never a widget; results reach the GUI thread as Qt signals."""
