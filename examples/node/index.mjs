// A Node.js handler (runtime nodejs20.x, handler index.handler).
export const handler = async (event, context) => {
  const name = event?.name ?? "world";
  console.log(`node handler: request ${context.awsRequestId}`);
  return { message: `hello, ${name}`, node: process.version };
};
