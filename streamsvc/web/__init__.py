"""The thin HTTP and websocket edge."""
