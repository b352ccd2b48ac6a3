/**
 * Progress, property-style: random sequences of sends, confirmations, failures and restarts, each
 * checked against the invariants — confirmed bytes and the fraction never go backwards, nothing goes
 * above 100 %, confirmed + in flight never exceed the total.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { seededRandom } from '@ferry/testing';
import { type Flight, ProgressTracker, type UploadProgress } from '../src/core/progress.ts';

function checkInvariants(events: UploadProgress[], total: number | undefined): void {
  let previous: UploadProgress | undefined;
  for (const event of events) {
    assert.ok(event.bytesConfirmed >= 0 && event.bytesInFlight >= 0);
    if (event.totalBytes !== undefined) {
      assert.ok(event.bytesConfirmed <= event.totalBytes, 'confirmed ≤ total');
      assert.ok(
        event.bytesConfirmed + event.bytesInFlight <= event.totalBytes,
        'confirmed + in flight ≤ total',
      );
      assert.ok(
        event.fraction !== undefined && event.fraction >= 0 && event.fraction <= 1,
        'fraction in [0, 1]',
      );
    }
    if (total !== undefined) assert.equal(event.totalBytes, total);
    if (previous !== undefined) {
      assert.ok(event.bytesConfirmed >= previous.bytesConfirmed, 'confirmed never goes back');
      if (previous.fraction !== undefined && event.fraction !== undefined) {
        assert.ok(event.fraction >= previous.fraction, 'fraction never goes back');
      }
    }
    assert.ok(event.bytesPerSecond >= 0);
    assert.ok(event.etaSeconds === undefined || event.etaSeconds >= 0);
    previous = event;
  }
}

function runSequence(seed: number): void {
  const random = seededRandom(seed);
  const total = random() < 0.1 ? 0 : Math.floor(random() * 50_000_000);
  const knownSize = random() < 0.8;
  let clock = 0;
  const events: UploadProgress[] = [];
  const tracker = new ProgressTracker({
    totalBytes: knownSize ? total : undefined,
    onProgress: (event) => events.push(event),
    intervalMs: 0,
    now: () => clock,
  });
  // A "server" whose confirmed offset may jump back to 0 (the upload was lost and restarted).
  let serverOffset = 0;
  const flights: { flight: Flight; bytes: number }[] = [];
  for (let step = 0; step < 200; step++) {
    clock += Math.floor(random() * 300);
    const action = random();
    if (action < 0.35) {
      const flight = tracker.startFlight();
      const bytes = Math.floor(random() * 4_000_000);
      flight.sent(bytes);
      flights.push({ flight, bytes });
    } else if (action < 0.6 && flights.length > 0) {
      const [{ flight, bytes }] = flights.splice(Math.floor(random() * flights.length), 1) as [
        { flight: Flight; bytes: number },
      ];
      flight.end();
      serverOffset = Math.min(total, serverOffset + bytes);
      tracker.confirmed(serverOffset);
    } else if (action < 0.75 && flights.length > 0) {
      flights.pop()?.flight.end(); // a failed request
    } else if (action < 0.8) {
      serverOffset = 0; // restart from zero
      tracker.confirmed(serverOffset);
    } else if (action < 0.85 && !knownSize) {
      tracker.setTotal(total);
    } else if (action < 0.9) {
      // A server never confirms more than the source has; once the size is known, a report past
      // it is clamped all the same.
      const limit = tracker.snapshot().totalBytes === undefined ? total : total * 1.5;
      tracker.confirmed(Math.floor(random() * limit));
    }
  }
  tracker.setTotal(total);
  tracker.flush();
  tracker.dispose();
  checkInvariants(events, undefined);
  const last = events[events.length - 1] as UploadProgress;
  assert.equal(last.totalBytes, total);
}

describe('progress invariants', () => {
  it('hold for 300 random sequences of sends, confirmations, failures and restarts', () => {
    for (let seed = 1; seed <= 300; seed++) {
      try {
        runSequence(seed);
      } catch (error) {
        (error as Error).message = `seed ${seed}: ${(error as Error).message}`;
        throw error;
      }
    }
  });
});

describe('progress semantics', () => {
  it('speed is an exponential moving average of bytes sent; ETA follows from it', () => {
    let clock = 0;
    const tracker = new ProgressTracker({
      totalBytes: 100_000_000,
      onProgress: () => {},
      intervalMs: 0,
      now: () => clock,
    });
    tracker.snapshot();
    for (let second = 1; second <= 20; second++) {
      clock = second * 1000;
      const flight = tracker.startFlight();
      flight.sent(1_000_000);
      flight.end();
      tracker.confirmed(second * 1_000_000);
    }
    const snapshot = tracker.snapshot();
    assert.ok(Math.abs(snapshot.bytesPerSecond - 1_000_000) < 50_000, String(snapshot.bytesPerSecond));
    assert.ok(Math.abs((snapshot.etaSeconds ?? 0) - 80) < 5, String(snapshot.etaSeconds));
  });

  it('bytes the server already had (a resume) do not count as speed', () => {
    let clock = 0;
    const tracker = new ProgressTracker({
      totalBytes: 1000,
      onProgress: () => {},
      intervalMs: 0,
      now: () => clock,
    });
    tracker.snapshot();
    clock = 1000;
    tracker.confirmed(900);
    assert.equal(tracker.snapshot().bytesPerSecond, 0);
    assert.equal(tracker.snapshot().fraction, 0.9);
  });

  it('an empty file is complete at once', () => {
    const tracker = new ProgressTracker({ totalBytes: 0, onProgress: () => {} });
    assert.equal(tracker.snapshot().fraction, 1);
    assert.equal(tracker.snapshot().etaSeconds, 0);
  });

  it('parts are counted only when set, go with the next event and never pass the total', () => {
    const events: UploadProgress[] = [];
    const tracker = new ProgressTracker({
      totalBytes: 1000,
      onProgress: (event) => events.push(event),
      intervalMs: 0,
    });
    tracker.confirmed(100);
    assert.equal('parts' in (events[0] as UploadProgress), false, 'tus reports no parts');
    tracker.setParts(1, 4);
    assert.equal(events.length, 1, 'no event of its own');
    tracker.confirmed(250);
    assert.deepEqual(events[1]?.parts, { confirmed: 1, total: 4 });
    tracker.setParts(5, 4);
    assert.deepEqual(tracker.snapshot().parts, { confirmed: 4, total: 4 });
  });

  it('events are throttled, and the last state is always delivered', async () => {
    const events: UploadProgress[] = [];
    // The clock stands still while the updates come, as if they all came within 50 ms: a busy
    // machine pausing the loop would otherwise let a second event through on time.
    const tracker = new ProgressTracker({
      totalBytes: 1000,
      onProgress: (event) => events.push(event),
      intervalMs: 50,
      now: () => 0,
    });
    for (let i = 1; i <= 100; i++) tracker.confirmed(i * 10);
    assert.equal(events.length, 1);
    // The trailing event comes from a 50 ms timer; one started later for 80 ms fires after it.
    await new Promise((resolve) => setTimeout(resolve, 80));
    assert.equal(events.length, 2);
    assert.equal(events[1]?.bytesConfirmed, 1000);
    tracker.dispose();
  });

  it('while a request is in flight and no byte moves, heartbeats bring the speed down', async () => {
    let clock = 0;
    const events: UploadProgress[] = [];
    const tracker = new ProgressTracker({
      totalBytes: 100_000_000,
      onProgress: (event) => events.push(event),
      intervalMs: 0,
      heartbeatMs: 10,
      now: () => clock,
    });
    tracker.snapshot();
    const flight = tracker.startFlight();
    for (let second = 1; second <= 10; second++) {
      clock = second * 1000;
      flight.sent(1_000_000);
    }
    const moving = events.at(-1);
    assert.ok(moving !== undefined && moving.bytesPerSecond > 900_000, String(moving?.bytesPerSecond));
    clock += 10_000;
    const before = events.length;
    await new Promise((resolve) => setTimeout(resolve, 40));
    assert.ok(events.length > before, 'an event came without a byte moving');
    const stalled = events.at(-1);
    assert.ok(stalled !== undefined && stalled.bytesPerSecond < 100_000, String(stalled?.bytesPerSecond));
    assert.ok((stalled.etaSeconds ?? 0) > (moving.etaSeconds ?? 0));
    flight.end();
    const ended = events.length;
    await new Promise((resolve) => setTimeout(resolve, 40));
    assert.equal(events.length, ended, 'no heartbeat once nothing is in flight');
    tracker.dispose();
  });
});
