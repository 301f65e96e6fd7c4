"""Stripe API emulator (API version 2023-08-16): customers, products, prices, subscriptions,
invoice items, invoices, credit notes and events, with signed webhooks."""
