DROP TABLE endpoint_rooms;
