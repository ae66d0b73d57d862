// An SSE event buffer for the SDK server transports (their EventStore): every event a session's
// client is sent is kept, so a client whose stream was cut resumes with Last-Event-ID and misses
// nothing. Bounded by count and bytes, oldest dropped first (a resume from before that starts
// afresh). Each broker session has one; the demo upstream shares one across its sessions.
import type { EventId, EventStore, JSONRPCMessage, StreamId } from '@modelcontextprotocol/server';

export class EventBuffer implements EventStore {
  private readonly events = new Map<EventId, { streamId: StreamId; message: JSONRPCMessage; size: number }>();
  private seq = 0;
  private bytes = 0;
  private readonly maxEvents: number;
  private readonly maxBytes: number;

  constructor(maxEvents = 1000, maxBytes = 4 * 1024 * 1024) {
    this.maxEvents = maxEvents;
    this.maxBytes = maxBytes;
  }

  async storeEvent(streamId: StreamId, message: JSONRPCMessage): Promise<EventId> {
    const id = `${streamId}_${String(++this.seq).padStart(10, '0')}`;
    const size = JSON.stringify(message).length;
    this.events.set(id, { streamId, message, size });
    this.bytes += size;
    while (this.events.size > this.maxEvents || (this.bytes > this.maxBytes && this.events.size > 1)) {
      const [oldest, e] = this.events.entries().next().value as [EventId, { size: number }];
      this.events.delete(oldest);
      this.bytes -= e.size;
    }
    return id;
  }

  async getStreamIdForEventId(eventId: EventId): Promise<StreamId | undefined> {
    return this.events.get(eventId)?.streamId;
  }

  async replayEventsAfter(
    lastEventId: EventId,
    { send }: { send: (eventId: EventId, message: JSONRPCMessage) => Promise<void> },
  ): Promise<StreamId> {
    const last = this.events.get(lastEventId);
    if (!last) return '';
    let after = false;
    for (const [id, e] of this.events) {
      if (id === lastEventId) {
        after = true;
        continue;
      }
      if (after && e.streamId === last.streamId) await send(id, e.message);
    }
    return last.streamId;
  }
}
