"""The test suites, as a package: pytest imports each test module by its dotted name
(``tests.ws.test_ws_flow``) with the checkout root on ``sys.path``, so modules of the same
name in two suites never collide and every helper is imported from ``tests.support``,
with no ``sys.path`` edits. Fixture apps under ``apps/`` folders are not packages: the
servers load them by path, as a user's apps."""
