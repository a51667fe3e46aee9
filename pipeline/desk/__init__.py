"""The support desk: find a statement, show its timeline, act on it, audit every look."""
