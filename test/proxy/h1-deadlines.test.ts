import { describe, expect, it } from 'vitest';
import { DeadlineList, type Deadline } from '../../variants/upstream/h1/deadlines.js';
import { sleep } from './helpers.js';

function entry(name: string): Deadline & { name: string } {
  return { name, deadline: 0, prev: null, next: null, linked: false };
}

describe('h1 deadline list (one timer for every request of a client)', () => {
  it('expires each entry at its own deadline, never early, and skips removed ones', async () => {
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
    await sleep(300);
    expect(fired.map(([n]) => n)).toEqual(['fast', 'slow']);
    expect(fired[0]![1]).toBeGreaterThanOrEqual(39);
    expect(fired[0]![1]).toBeLessThan(150);
    expect(fired[1]![1]).toBeGreaterThanOrEqual(199);
    expect(removed.linked).toBe(false);
    list.close();
  });

  it('keeps working after entries come and go (the list empties and refills)', async () => {
    const fired: string[] = [];
    const list = new DeadlineList<Deadline & { name: string }>((e) => fired.push(e.name));
    for (let i = 0; i < 1000; i++) {
      const e = entry(`e${i}`);
      list.add(e, Date.now() + 30);
      list.remove(e);
    }
    const last = entry('last');
    list.add(last, Date.now() + 30);
    await sleep(120);
    expect(fired).toEqual(['last']);
    list.close();
  });
});
