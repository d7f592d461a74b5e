"""What AWS or a partner would run, rebuilt here: HTTP servers, payments, messaging, API destination delivery, Step
Functions kit, Powertools set up outside Lambda."""
