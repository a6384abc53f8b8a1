-- A fixture for createTestDatabase({ fixtures }): applied to each fresh clone.
INSERT INTO users (username, email, display_name)
VALUES ('fixture_ada', 'ada@fixture.test', 'Ada (fixture)');
