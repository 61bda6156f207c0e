"""Root of the test tree: its folder is on sys.path, so every suite can import `stemforge_testing`."""
