// TLS options of a route's upstream connections (PEM contents already read), as the connector
// takes them. Shared by routing (which builds them from config) and transport (which uses them).
export interface UpstreamTls {
  readonly rejectUnauthorized: boolean;
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
  readonly servername?: string;
}
