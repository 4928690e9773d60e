// @fanout/client — the browser and Node client of a Fanout gateway's progress streams.
// See README "Client library". The collaboration helper (supabase-js pointed at the same
// gateway) is a separate entry point, collaboration.ts, so an app that only follows
// progress does not load supabase-js.
export { FanoutClient, type FanoutClientOptions, type ShareOptions, type SubscribeOptions, type ClientEvents } from './client.js';
export { Subscription, FINAL_EVENTS, type SubscriptionHandlers, type SubscriptionStats, type EndInfo, type EndReason } from './subscription.js';
export { DEFAULT_TIMING, type SourceTiming } from './timing.js';
export { FanoutHttpError, type FetchLike, type TokenSource } from './http.js';
export { formatPosition, parsePosition, type Position, type Start } from './position.js';
export type { ConnectionState, ConnectionStats, FanoutErrorInfo, FanoutMessage, From, MessageData, ProgressData, ResetInfo } from './types.js';
