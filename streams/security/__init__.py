"""Security: camera detections and alarms."""
