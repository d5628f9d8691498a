DROP TABLE bus_messages;
DROP TABLE bus_queues;
