"""From a callback request to a durable call: gate, pipeline, writer, spool and quarantine."""
