"""The gallery registry shared by a fleet: git + DVC sync at start-up and publishing (no Qt)."""
