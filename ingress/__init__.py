"""The webhook ingress: FastAPI app, event ledger, routing to Temporal, and the HubSpot poll schedule."""
