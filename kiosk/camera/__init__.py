"""Frame sources and the capture thread (no Qt): camera index, video file or stream URL."""
