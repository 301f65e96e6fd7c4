"""The webhook ingress: the FastAPI app, routing of deliveries to Temporal, and the HubSpot poll schedule."""
