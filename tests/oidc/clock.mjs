// The suite's clock (tests/suite/clock.py): a run at a chosen date (FORLOP_TEST_TODAY) gives every process it starts
// the offset from the real clock in PYTEST_CLOCK_OFFSET (seconds), so the tokens this provider issues carry the same
// "now" as the Forløp server and the test that check them. Imported before anything else reads the time.

const offset = Number(process.env.PYTEST_CLOCK_OFFSET || 0) * 1000;

if (offset) {
  const RealDate = Date;
  globalThis.Date = class extends RealDate {
    constructor(...args) {
      super(...(args.length ? args : [RealDate.now() + offset]));
    }

    static now() {
      return RealDate.now() + offset;
    }
  };
}
