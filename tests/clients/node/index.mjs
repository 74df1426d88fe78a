// Echo function for the aws-lambda-ric test fixture: answers {"echo": <event>}; throws on
// {"fail": true}, so the real client posts /error.

class EchoFailure extends Error {
  constructor(message) {
    super(message);
    // A fixed name, so the test can check the client's errorType exactly.
    this.name = "EchoFailure";
  }
}

export const handler = async (event) => {
  if (event !== null && typeof event === "object" && event.fail === true) {
    console.log("failing on request");
    throw new EchoFailure("requested failure");
  }
  return { echo: event };
};
