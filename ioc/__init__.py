"""Smart-city IOC: settings, command line, local infrastructure and database migrations."""
