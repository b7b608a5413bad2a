"""A minimal Django project for tests/test_wsgi.py: settings, URLs, views,
and ``wsgi.application`` as ``django-admin startproject`` makes it."""
