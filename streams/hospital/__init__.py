"""Hospitals: bed, ICU, emergency-room and ambulance status; admissions."""
