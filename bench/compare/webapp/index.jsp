<%--
  The benchmark's Tomcat page: the same page, URLs and text as httpd's demo page
  (demo/mod_session_cluster_demo.c), so that one wrk script drives both:
    /app             HTML: route, session id, created, counter; counter + 1
    /app?auto        the same as "Key: value" text, with every attribute
    /app?read        text, without incrementing
    /app?set=K&value=V   set an attribute (text), no increment
  The request header X-Bench is echoed (the wrk script's session tag).
--%><%@ page session="false" import="jakarta.servlet.http.HttpSession,java.util.Enumeration" %><%
    String route = System.getProperty("bench.route", request.getServerName());
    String bench = request.getHeader("X-Bench");
    if (bench != null) {
        response.setHeader("X-Bench", bench);
    }
    boolean auto = request.getParameter("auto") != null;
    boolean read = request.getParameter("read") != null;
    String set = request.getParameter("set");
    boolean text = auto || read || set != null;
    HttpSession s = request.getSession(true);
    if (set != null) {
        String v = request.getParameter("value");
        s.setAttribute(set, v == null ? "" : v);
    }
    Object c = s.getAttribute("counter");
    long n = c == null ? 0 : Long.parseLong(c.toString());
    String created = (String) s.getAttribute("created");
    if (!read && set == null) {
        n++;
        s.setAttribute("counter", Long.toString(n));
        if (created == null) {
            created = new java.util.Date().toString();
            s.setAttribute("created", created);
        }
    }
    if (text) {
        response.setContentType("text/plain");
        out.print("Route: " + route + "\nSession: " + s.getId() + "\nCounter: " + n
                  + "\nCreated: " + (created == null ? "" : created) + "\n");
        for (Enumeration<String> e = s.getAttributeNames(); e.hasMoreElements(); ) {
            String k = e.nextElement();
            out.print("Attribute: " + k + "=" + s.getAttribute(k) + "\n");
        }
        return;
    }
    response.setContentType("text/html; charset=utf-8");
    out.print("<!DOCTYPE html><html><head><title>Session on " + route + "</title></head>"
              + "<body style=\"font-family: sans-serif\"><h1>" + route + "</h1>"
              + "<table border=\"1\" style=\"border-collapse: collapse\">"
              + "<tr><th>Session id</th><td>" + s.getId() + "</td></tr>"
              + "<tr><th>Created</th><td>" + (created == null ? "" : created) + "</td></tr>"
              + "<tr><th>Counter</th><td>" + n + "</td></tr></table></body></html>\n");
%>
