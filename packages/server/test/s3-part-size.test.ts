import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  capacityOf,
  choosePartPlan,
  GiB,
  MAX_PART_SIZE,
  MAX_PARTS,
  MIN_PART_SIZE,
  MiB,
  partSizeOf,
} from '../src/stores/s3/s3-part-size.ts';

const TiB = 1024 * GiB;

describe('s3 part size', () => {
  it('keeps the preferred size while the file fits in 10,000 parts', () => {
    assert.deepEqual(choosePartPlan(0, 8 * MiB), { size: 8 * MiB, grows: false });
    assert.deepEqual(choosePartPlan(8 * MiB * MAX_PARTS, 8 * MiB), { size: 8 * MiB, grows: false });
  });

  it('raises the size in whole MiB at the 10,000-part limit', () => {
    const size = 8 * MiB * MAX_PARTS + 1;
    const plan = choosePartPlan(size, 8 * MiB);
    assert.equal(plan.size, 9 * MiB);
    assert.ok(Math.ceil(size / plan.size) <= MAX_PARTS);
    for (const bytes of [100 * GiB, 1 * TiB, 5 * TiB, 5 * TiB - 1, 123_456_789_012]) {
      const chosen = choosePartPlan(bytes, 8 * MiB);
      assert.ok(Math.ceil(bytes / chosen.size) <= MAX_PARTS, `${bytes}`);
      assert.ok(chosen.size % MiB === 0 && chosen.size <= MAX_PART_SIZE);
      // The smallest size in whole MiB that fits: one MiB less would need too many parts.
      if (chosen.size > 8 * MiB) assert.ok(Math.ceil(bytes / (chosen.size - MiB)) > MAX_PARTS, `${bytes}`);
    }
  });

  it('keeps parts within 5 MiB..5 GiB whatever is preferred', () => {
    assert.equal(choosePartPlan(100, 1).size, MIN_PART_SIZE);
    assert.equal(choosePartPlan(100, 10 * GiB).size, MAX_PART_SIZE);
    assert.throws(() => choosePartPlan(100, 0), RangeError);
  });

  it('lets a deferred length reach 5 TiB by doubling every 1,000 parts', () => {
    const plan = choosePartPlan(null, 8 * MiB);
    assert.equal(plan.grows, true);
    assert.equal(partSizeOf(plan, 1), 8 * MiB);
    assert.equal(partSizeOf(plan, 1000), 8 * MiB);
    assert.equal(partSizeOf(plan, 1001), 16 * MiB);
    assert.equal(partSizeOf(plan, 10_000), Math.min(MAX_PART_SIZE, 8 * MiB * 2 ** 9));
    assert.ok(capacityOf(plan) >= 5 * TiB);
    assert.ok(capacityOf(choosePartPlan(5 * TiB, 8 * MiB)) >= 5 * TiB);
  });
});
