"""HubSpot CRM emulator (``create_app`` in :mod:`sandbox.hubspot.app`)."""
