import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DeadlineList, type Deadline } from '../../variants/upstream/h1/deadlines.js';

function entry(name: string): Deadline & { name: string } {
  return { name, deadline: 0, prev: null, next: null, linked: false };
}

// A pure data structure over setTimeout and Date.now: the clock is the fake one, so every expiry is checked at its
// exact millisecond. On the real clock a busy machine fires timers late and "not before 200 ms, done by 300 ms"
// is a bet on the scheduler.
describe('h1 deadline list (one timer for every request of a client)', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000, toFake: ['setTimeout', 'clearTimeout', 'Date'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('expires each entry at its own deadline, never early, and skips removed ones', () => {
    const fired: Array<[string, number]> = [];
    const t0 = Date.now();
    const list = new DeadlineList<Deadline & { name: string }>((e) => fired.push([e.name, Date.now() - t0]));
    const slow = entry('slow');
    const removed = entry('removed');
    const fast = entry('fast');
    list.add(slow, t0 + 200);
    list.add(removed, t0 + 60);
    // added last with the earliest deadline: must re-arm the timer, not wait behind 'slow'
    list.add(fast, t0 + 40);
    list.remove(removed);
    vi.advanceTimersByTime(39);
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(fired).toEqual([['fast', 40]]);
    vi.advanceTimersByTime(159);
    expect(fired).toEqual([['fast', 40]]);
    vi.advanceTimersByTime(1);
    expect(fired).toEqual([
      ['fast', 40],
      ['slow', 200],
    ]);
    expect(removed.linked).toBe(false);
    list.close();
  });

  it('keeps working after entries come and go (the list empties and refills)', () => {
    const fired: string[] = [];
    const list = new DeadlineList<Deadline & { name: string }>((e) => fired.push(e.name));
    for (let i = 0; i < 1000; i++) {
      const e = entry(`e${i}`);
      list.add(e, Date.now() + 30);
      list.remove(e);
    }
    const last = entry('last');
    list.add(last, Date.now() + 30);
    vi.advanceTimersByTime(29);
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(fired).toEqual(['last']);
    vi.advanceTimersByTime(1000);
    expect(fired).toEqual(['last']);
    list.close();
  });
});
