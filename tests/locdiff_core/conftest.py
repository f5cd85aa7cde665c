"""Makes this folder's helper modules (``geoclip_helpers``) importable from its subfolders."""
