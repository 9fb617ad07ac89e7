-- compose: one PostgreSQL server, one database per owner.
CREATE DATABASE ml_queue;
CREATE DATABASE gateway;
