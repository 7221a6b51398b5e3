import { describe, expect, it } from 'vitest';
import {
  findRuleProblems,
  findWindowProblems,
  minutesOfDay,
  toFieldErrors,
  toTimeOfDay,
} from './schedule.ts';

describe('schedule windows', () => {
  it('reads stored and requested times of day', () => {
    expect(minutesOfDay('09:30')).toBe(570);
    expect(minutesOfDay('24:00:00')).toBe(1440);
    expect(toTimeOfDay('09:05:00')).toBe('09:05');
  });

  it('accepts windows that touch', () => {
    expect(
      findWindowProblems(
        [
          { index: 0, start: '09:00', end: '12:00' },
          { index: 1, start: '12:00', end: '13:00' },
        ],
        15,
      ),
    ).toEqual([]);
  });

  it('points at the later of two overlapping windows', () => {
    const problems = findRuleProblems(
      [
        { weekday: 1, start: '09:00', end: '12:00' },
        { weekday: 2, start: '11:00', end: '13:00' },
        { weekday: 1, start: '11:30', end: '13:00' },
      ],
      15,
    );
    expect(toFieldErrors(problems, '/body/rules')).toEqual([
      { pointer: '/body/rules/2/start', detail: 'overlaps window 0' },
    ]);
    expect(problems[0]?.isOverlap).toBe(true);
  });

  it('finds a window nested in a longer one', () => {
    const problems = findWindowProblems(
      [
        { index: 0, start: '08:00', end: '18:00' },
        { index: 1, start: '10:00', end: '11:00' },
        { index: 2, start: '12:00', end: '13:00' },
      ],
      15,
    );
    expect(problems.map((problem) => problem.index)).toEqual([1, 2]);
  });

  it('refuses a window that ends before it starts or cannot hold one slot', () => {
    const problems = findWindowProblems(
      [
        { index: 0, start: '10:00', end: '09:00' },
        { index: 1, start: '11:00', end: '11:10' },
      ],
      15,
    );
    expect(toFieldErrors(problems, '/body/windows')).toEqual([
      { pointer: '/body/windows/0/end', detail: 'must be after start' },
      { pointer: '/body/windows/1/end', detail: 'leaves less than one 15-minute slot' },
    ]);
    expect(problems.every((problem) => !problem.isOverlap)).toBe(true);
  });
});
