"""Open failures: which secrets have a failed rotation not yet recovered, as audit-table state and gauges."""
