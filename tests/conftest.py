"""Shared pytest fixtures for the cyclone test suite."""
