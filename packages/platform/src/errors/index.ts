export {
  AppError,
  type AppErrorOptions,
  assertNever,
  type ErrorKind,
  type FieldError,
  isAppError,
} from './app-error.ts';
export { PROBLEM_CONTENT_TYPE, type ProblemDocument, presentKind, toProblem } from './problem.ts';
