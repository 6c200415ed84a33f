"""Record Kafka topics into MCAP files and replay them, paced, into a sandbox namespace."""
