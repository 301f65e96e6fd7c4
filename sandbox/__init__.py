"""Local emulators of the vendors' APIs (HubSpot, Ironclad, Stripe, Xero) with fault injection."""
