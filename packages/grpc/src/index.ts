export { GrpcServer, type GrpcServerOptions, type ListenOptions } from './server.js';
export { createGrpcClient, createGrpcChannel, grpcTarget, type GrpcClientOptions } from './client.js';
export { fromGrpcError } from './status.js';
export { receivedWire } from './received-wire.js';
