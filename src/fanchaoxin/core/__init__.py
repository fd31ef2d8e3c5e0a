"""What every capability shares: settings, database, auth, audit, errors, calendar, identifiers."""
